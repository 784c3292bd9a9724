"""Lauks: the shared package read by the gateway, the API, the dashboards and the tools.

It holds the contract between kits and the gateway (catalog, message models, topics), the settings
and the InfluxDB v1-API client. Nothing in here talks to a broker.
"""

__version__ = "0.1.0"
