"""Publishing: feeds (Atom, RSS, JSON Feed), RFC 5005 archives and an HTML index.

``feeds.py`` and ``site.py`` render records to bytes and touch nothing; ``plan.py`` (pure)
says which archive and month pages there are and what each is made from; ``build.py`` decides
what to render from the store and writes only files whose bytes changed; ``websub.py``
announces changed feeds to a hub.
"""
