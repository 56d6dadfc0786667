/* secrets.h — AWS secret keys at rest: AES-256-GCM envelopes.
 *
 * Envelope (bytea in the database), version 1:
 *   [0]      version (1)
 *   [1..4]   key id: the first 4 bytes of SHA-256(key), to tell keys apart
 *   [5..16]  96-bit random nonce (RAND_bytes), fresh for every value
 *   [17..]   ciphertext (same length as the plaintext)
 *   [-16..]  GCM tag
 * The AAD is the version and key id plus a context string naming the column
 * ("integrations.secret_access_key"), so an envelope cannot be moved to
 * another column unnoticed.
 *
 * The key is 32 raw bytes or 64 hex characters (a trailing newline is
 * ignored) in a file: the explicit path, else $S3GRANT_SECRETS_KEY_FILE,
 * else $CREDENTIALS_DIRECTORY/secrets-key (systemd LoadCredential=).
 * struct secrets_key holds key material: wipe it with secrets_key_wipe().
 * Plaintexts returned by secrets_open() are the caller's to wipe and free.
 */
#pragma once
#include <stddef.h>
#include <stdint.h>

#include "core/err.h"

#define SECRETS_VERSION 1
#define SECRETS_HEADER 17      /* version + key id + nonce */
#define SECRETS_TAG 16
#define SECRETS_MAX_PLAIN 4096

struct secrets_key {
	uint8_t key[32];
	uint8_t id[4];
};

/* Resolve the key file path (explicit, env, credentials dir); ret_path is
 * x_strdup'd. -ENOENT when no source is configured. */
int secrets_key_path(const char *explicit_path, char **ret_path) S3G_WUR;
int secrets_key_load(const char *path, struct secrets_key *ret_key) S3G_WUR;
/* Parse key bytes already read (32 raw or 64 hex). */
int secrets_key_parse(const uint8_t *data, size_t n, struct secrets_key *ret_key) S3G_WUR;
void secrets_key_wipe(struct secrets_key *k);

/* Encrypt plain (n bytes) for context; ret_env is x_malloc'd, ret_len set. */
int secrets_seal(const struct secrets_key *k, const char *context, const void *plain, size_t n,
		 uint8_t **ret_env, size_t *ret_len) S3G_WUR;
/* Decrypt; ret_plain is NUL-terminated, x_malloc'd. S3G_ECONFIG when the
 * envelope was made with another key, S3G_EPARSE when it is malformed or
 * does not authenticate. */
int secrets_open(const struct secrets_key *k, const char *context, const uint8_t *env, size_t len,
		 char **ret_plain, size_t *ret_n) S3G_WUR;
