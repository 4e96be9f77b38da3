// Entry of healthstate/adapters/memory: the in-process reference adapter.
export {};
