"""sescontacts: manage the contacts of an Amazon SES v2 contact list."""

__version__ = "0.1.0"
