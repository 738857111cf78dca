"""The telemetry core: the neutral record, the recorder that turns it into spans, metrics
and events, steps, streams, content policy and every semantic-convention name. It knows no
provider SDK and no exporter."""
