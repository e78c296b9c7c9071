"""Bounces and complaints that arrive after the fact, read from a mailbox.

=====================  ==========================================================
module                 its one job
=====================  ==========================================================
``classify``           pure: one raw message -> hard or soft bounce per recipient, a
                       complaint (RFC 5965 ARF), an auto-reply, or unrecognised
``policy``             pure: which bounces are believed (trust) and when they mark a
                       subscriber bounced (in a row, over days; a success resets)
``mailbox``            read new messages from a Maildir folder or an IMAP mailbox and
                       mark each processed, never deleting one
``process``            the loop: classify, decide, store in one transaction, then mark
                       the message processed (a crash in between loses nothing)
``audit``              one digest's recipients with the ledger and the bounce log
``records``            the kinds, trusts and actions, and the rows the store keeps (light:
                       the store imports it on every open)
=====================  ==========================================================

The envelope sender that makes bounces name their recipient (VERP) is
:mod:`iomfeed.delivery.verp`. flufl.bounce (its detectors of the formats servers send) is
imported only by ``classify``, so nothing here loads it unless ``[bounces]`` is configured.
"""
