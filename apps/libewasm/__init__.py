"""libewasm.so: the engine as an EVMC VM (EVMC ABI 12) that C and C++ node software loads.

build: cffi's embedding mode compiles the C `evmc_vm` (`python -m apps.libewasm build
--output DIR`); embedded: the Python side its entry points call, which runs
`ewasm.execute` under the metering policy the VM's options choose.
"""
