"""Code shared by the meshdrop Lambda functions: observability, settings, clients, job store."""
