"""The Sales Platform service kit: infrastructure every service shares.

Infrastructure only — never an entity, schema, rule or SQL of a service.
See CHANGELOG.md for its versions.
"""

__version__ = "0.2.0"
