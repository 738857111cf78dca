"""The export pipeline: settings, init()/shutdown(), providers, OTLP exporters, resource,
signal handling and the Prometheus scraper."""
