#!/bin/sh
id -un > hooked-by.txt
