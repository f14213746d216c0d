"""API tokens: stored hashed, with an expiry and revocation, shown once when made.

DRF's `rest_framework.authtoken` keeps each token in plain text, forever, one per user,
and shows it in the admin. These tokens are 256-bit secrets of which only the SHA-256
digest is stored (a slow hash adds nothing to a secret this long) and an 8-character
prefix to recognise them by; the secret is shown once, to whoever made it.
"""
