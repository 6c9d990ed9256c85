/* ESP32-C3 entry point, called by reset_c. Kept out of the host
 * build, which links the same core with its own main (tools/). */
#include "app.h"
#include "port.h"

int main(void) {
    port_init();
    tp_app_main();
    return 0;
}
