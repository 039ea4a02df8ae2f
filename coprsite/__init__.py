"""coprsite: an RPM build service in the spirit of Fedora Copr."""
