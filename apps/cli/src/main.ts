#!/usr/bin/env node
import { runCli } from "./cli.js";

// `vmmkit run … | head` closes the pipe early: end quietly, as a process killed by SIGPIPE would.
process.stdout.on("error", (error: NodeJS.ErrnoException) => {
  if (error.code === "EPIPE") process.exit(0);
  throw error;
});

process.exitCode = await runCli(process.argv.slice(2), { stdout: process.stdout, stderr: process.stderr, stdin: process.stdin });
