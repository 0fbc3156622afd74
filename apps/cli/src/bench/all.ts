/**
 * Imports every benchmark module so each registers itself. Add a line here for a new one.
 */
import "./cpu.js";
import "./dbgf.js";
import "./gdb.js";
import "./iom.js";
import "./pgm.js";
import "./whpx.js";
