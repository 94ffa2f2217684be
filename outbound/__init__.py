"""Outbound deliverability: return paths, bounces and complaints, suppression, unsubscribe, DKIM, DNS checks.

It sits beside drafting in the layers: drafting's send path asks it for the envelope sender, the
extra headers and the signature; intake's IMAP machinery hands it the bounce mailbox's messages.
"""
