"""The seed API: ``POST <base>`` and ``POST <base>/<recipient>[,<recipient>…]``."""
