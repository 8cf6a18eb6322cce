/**
 * `tsx scripts/install-package.ts`: packs this checkout (`npm pack`) and installs the tarball into
 * a prefix in the cache (reused while the sources are the same), as the tests of the installed
 * package use it; prints the installed `haoscar` command. .ci/run exports it as HAOSCAR_INSTALLED.
 */
import { installPackage } from '../test/support/installed-package.js';

const installed = await installPackage((message) => process.stderr.write(`install-package: ${message}\n`));
process.stdout.write(`${installed.haoscar}\n`);
