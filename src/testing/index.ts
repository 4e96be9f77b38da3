// Entry of healthstate/testing: the adapter conformance suite.
export {};
