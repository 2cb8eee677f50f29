"""HTTP: sending a request (:mod:`.transport`) and reading its bytes
(:mod:`.body`), with the deadline, the error table and the secrets kept out of
messages. Nothing here is public: import from :mod:`llmclients`."""
