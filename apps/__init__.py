"""The applications on top of the library, the layer nothing else imports.

cli: the `ewasm` command (validate, compile, run, meter, demo) and its dispatch to
chain_cli (`ewasm node`, deploy, call, send, balance, wrap-deploy) and statetest_cli
(`ewasm statetest`); libewasm: the engine as an EVMC VM for C and C++ nodes
(`python -m apps.libewasm build --output DIR` makes DIR/libewasm.so).
"""
