"""coprsite's tests; the tree mirrors apps/ and builders/."""
