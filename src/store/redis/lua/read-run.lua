local now, nowUs = clock()
return {snapshot(KEYS[1], KEYS[2]), record(KEYS[1], ARGV[1], nowUs)}
