#!/bin/sh
# Regenerates the test CA, a node key and CSR, and the authentication
# vectors, with the openssl CLI and the Python standard library only (never
# with the code under test). Run from this directory: sh make-vectors.sh
set -eu
# A CA for 2001:db8:42::/48: its serial is a 1 bit followed by the 48 bits.
openssl genpkey -algorithm rsa -pkeyopt rsa_keygen_bits:2048 -out ca.key 2>/dev/null
openssl req -new -x509 -key ca.key -out ca.crt -days 36500 -sha512 \
    -subj "/CN=re6st test CA/emailAddress=registry@example.com" -set_serial 0x120010db80042
# A node key and a CSR as re6st-conf makes it (no CN, SHA-512).
openssl genpkey -algorithm rsa -pkeyopt rsa_keygen_bits:2048 -out node.key 2>/dev/null
openssl req -new -key node.key -out node.csr -sha512 -subj "/O=Example Org/emailAddress=node@example.com"
# hello answer: a 20-byte secret encrypted to the node (PKCS#1 v1.5) and the
# CA's SHA-512 signature of the ciphertext.
printf '0123456789abcdefghij' > hello-secret.bin
openssl req -in node.csr -pubkey -noout > node.pub
openssl pkeyutl -encrypt -pubin -inkey node.pub -pkeyopt rsa_padding_mode:pkcs1 -in hello-secret.bin -out hello-ciphertext.bin
openssl dgst -sha512 -sign ca.key -out hello-signature.bin hello-ciphertext.bin
cat hello-ciphertext.bin hello-signature.bin > hello-answer.bin
rm hello-ciphertext.bin hello-signature.bin
# A signed network version 300: packed integer 0x21 0x0c (300 = 32 + 268,
# 268 + 8192 = 0x210c),
# then the CA's signature of those two bytes.
printf '\041\014' > version-packed.bin
openssl dgst -sha512 -sign ca.key -out version-signature.bin version-packed.bin
cat version-packed.bin version-signature.bin > version-300.bin
rm version-packed.bin version-signature.bin
python3 make-vectors.py > vectors.json
rm node.pub
