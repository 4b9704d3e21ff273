"""Wire schemas of the public API, one module per feature, separate from domain objects and
DB rows: `...Create`/`...In` are request bodies, `...Public`/`...Out`/`...List` are answers
(built from domain objects by their `of`)."""
