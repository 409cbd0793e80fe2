# SPDX-License-Identifier: GPL-2.0
#
# The Rust Live Update Orchestrator. The composite keeps the C
# implementation's object name, so log lines keep the "luo: " prefix.

obj-$(CONFIG_LIVEUPDATE_IMPL_RUST)	+= luo.o

luo-y :=								\
		luo_glue.o						\
		liveupdate.o

luo-$(CONFIG_LIVEUPDATE_RUST_FAULT_INJECT) += luo_test_glue.o
