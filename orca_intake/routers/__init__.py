"""The intake's routers, one module per resource."""
