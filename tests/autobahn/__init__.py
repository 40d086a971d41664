"""The Autobahn WebSocket conformance suite against our connection layer, in both roles.

``python -m tests.autobahn.run`` (what ``nox -s autobahn`` runs) builds the suite's own
Python 2.7 environment, runs ``wstest -m fuzzingclient`` against `echo_server` and
``wstest -m fuzzingserver`` against `echo_client`, and fails on any FAILED case. The case
list is one setting, `tests.autobahn.cases.CASES`. See docs/conformance.md.
"""
