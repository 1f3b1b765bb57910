"""Who is calling: credentials checked against what the service trusts, and what they grant."""
