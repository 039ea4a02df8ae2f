"""coprsite's Django apps."""
