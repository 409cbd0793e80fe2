// SPDX-License-Identifier: GPL-2.0
/*
 * Helpers for the Rust Live Update Orchestrator: static inline C functions
 * that bindgen cannot bind. Installed as rust/helpers/liveupdate.c by the
 * harness's integrate.sh. Prefixed with luo_ so they can never clash with a
 * binding of the same function where it is out of line.
 */

#include <linux/io.h>
#include <linux/mm.h>
#include <linux/module.h>

__rust_helper bool rust_helper_luo_try_module_get(struct module *module)
{
	return try_module_get(module);
}

__rust_helper void rust_helper_luo_module_put(struct module *module)
{
	module_put(module);
}

__rust_helper void *rust_helper_luo_phys_to_virt(phys_addr_t pa)
{
	return phys_to_virt(pa);
}

__rust_helper phys_addr_t rust_helper_luo_virt_to_phys(void *va)
{
	return virt_to_phys(va);
}

__rust_helper void rust_helper_luo_folio_put(struct folio *folio)
{
	folio_put(folio);
}
