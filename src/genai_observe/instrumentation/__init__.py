"""Provider instrumentors. Each lives in its own module and imports its SDK only when patching."""
