"""Copr-style API credentials: a random `login` and `token`, only a hash of the token kept."""

import hashlib
import hmac
import secrets
import string

LOGIN_LENGTH = 20  # Copr's api_login length
TOKEN_LENGTH = 30  # Copr's api_token length
ALPHABET = string.ascii_lowercase


def random_lowercase(length: int) -> str:
    return "".join(secrets.choice(ALPHABET) for _ in range(length))


def hash_token(token: str) -> str:
    # The token is 30 random letters (~141 bits): a fast hash is enough, no stretching needed.
    return hashlib.sha256(token.encode()).hexdigest()


def token_matches(token: str, token_hash: str) -> bool:
    return hmac.compare_digest(hash_token(token), token_hash)
