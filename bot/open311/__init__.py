"""Open311 GeoReport v2: the office's categories as services, its cases as service requests."""
