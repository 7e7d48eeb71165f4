"""Every JSON document the API serves, as msgspec Structs: one home for the response shapes.

Handlers build these Structs and ``routing.json_response`` encodes them; ``openapi`` generates
each document's JSON Schema from the same Structs (``msgspec.json.schema_components``), so what
is documented is what is served. A field with a default is optional in the schema (clients must
not rely on it); objects stay open (no ``additionalProperties: false``), so adding a field is
not a breaking change. Structs the stores already define (``PlanRow``, ``ChangeEvent``,
``HeldStock``, ...) are served as they are rather than copied.
"""
