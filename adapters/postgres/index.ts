// Entry of healthstate/adapters/postgres: the Postgres and PGlite reference adapter.
export {};
