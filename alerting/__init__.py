"""Alert mail for schools without Grafana: incidents of kits (silent, low battery, rejected readings, a failed
update) from the fleet page's facts, mailed to each site's contacts in their language (docs/alerts.md).

``rules`` is the pure core (incidents and the mails they call for, from facts and a site's settings, at a
given time); ``render`` writes the mails; ``outbox`` keeps incidents and mails in the metadata store;
``sender`` hands mails to an SMTP server; ``service`` is the loop of ``lauks alerts run``.
"""
