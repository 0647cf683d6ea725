#include <linux/module.h>
#include <linux/kernel.h>
#include <linux/dma-buf.h>
#include <linux/platform_device.h>
MODULE_IMPORT_NS(DMA_BUF);
static int __init probe_init(void)
{
	struct dma_buf *buf = dma_buf_get(-1);          /* namespaced: DMA_BUF */
	printk(KERN_INFO "probe %p %p\n", buf, platform_bus_type.name);  /* EXPORT_SYMBOL, _GPL */
	return 0;
}
static void __exit probe_exit(void) {}
module_init(probe_init);
module_exit(probe_exit);
MODULE_LICENSE("GPL");
