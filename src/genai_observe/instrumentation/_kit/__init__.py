"""The provider kit: what every provider instrumentation is built from (the base
instrumentor, the call shapes, raw-response proxies, the field reader, the registry)."""
