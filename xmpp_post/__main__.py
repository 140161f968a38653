"""``python -m xmpp_post`` is the ``xmpp-post`` console command."""

import sys

from xmpp_post.cli import main

sys.exit(main())
