"""Django-free code that runs on, or talks to, builder machines."""
