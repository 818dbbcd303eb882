#!/bin/sh
. /usr/local/lib/demo.sh
say "2.create-config: kept for scale-up (creates config.json for new worker groups); nothing to do in stage 2"
