"""Zero-code: the genai-observe-instrument wrapper, the sitecustomize bootstrap and the
OpenTelemetry distro and configurator."""
