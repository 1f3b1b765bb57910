"""Request and response bodies: `XCreate`, `XUpdate` and `XPublic` for each resource."""
