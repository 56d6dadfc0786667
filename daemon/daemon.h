/* daemon.h — the daemon proper: one libuv loop owning config, database
 * connection, signals, sd_notify and the drain on shutdown.
 */
#pragma once

/* Run the daemon with the config file at path until it is told to stop.
 * Returns the process exit code. */
int daemon_main(const char *config_path);
