// SPDX-License-Identifier: GPL-2.0
/*
 * Helpers for the Rust Live Update Orchestrator: static inline C functions
 * that bindgen cannot bind. Installed as rust/helpers/liveupdate.c by the
 * harness's integrate.sh. Prefixed with luo_ so they can never clash with a
 * binding of the same function where it is out of line.
 */

#include <linux/io.h>
#include <linux/memory_hotplug.h>
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

__rust_helper phys_addr_t rust_helper_luo_virt_to_phys(void *va)
{
	return virt_to_phys(va);
}

__rust_helper void rust_helper_luo_folio_put(struct folio *folio)
{
	folio_put(folio);
}

/*
 * The direct mapping of @phys if it is an order-0 page that KHO preserved for
 * this kernel and that nobody restored yet, else NULL; asked without taking
 * the page: kho_restore_folio() takes it and WARNs if it is not preserved.
 * This reads what kho_restore_page() reads: KHO marks a preserved page at boot
 * with its order and the magic "KHOP" in page->private (union kho_page_info in
 * kernel/liveupdate/kexec_handover.c), and clears it when it is restored.
 */
__rust_helper void *rust_helper_luo_kho_preserved_virt(phys_addr_t phys)
{
	/* The layout of kexec_handover.c's union kho_page_info, order 0. */
	const union {
		unsigned long page_private;
		struct {
			unsigned int order;
			unsigned int magic;
		};
	} preserved = { .order = 0, .magic = 0x4b484f50U /* KHO_PAGE_MAGIC */ };
	struct page *page = pfn_to_online_page(PHYS_PFN(phys));

	if (!page || page->private != preserved.page_private)
		return NULL;
	return phys_to_virt(phys);
}
