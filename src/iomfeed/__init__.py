"""iomfeed: scrape IOM Albania's news pages into a deduplicated SQLite store, and publish them
as feeds and an email digest.

Importing this package is cheap on purpose: a cron run with nothing to do must start fast, so
heavy libraries (bs4, feedparser, feedgen, premailer, apscheduler) load only in the stage that
needs them.
"""

__version__ = "0.1.0"
