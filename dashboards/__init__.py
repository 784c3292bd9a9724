"""Grafana dashboards, generated from one Python definition."""
