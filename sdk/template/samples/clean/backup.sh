#!/bin/sh
# An ordinary script: it must not be detected.
set -eu
tar -czf "/var/backups/home-$(date +%F).tar.gz" /home
find /var/backups -name 'home-*.tar.gz' -mtime +30 -delete
