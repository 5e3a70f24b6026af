-- workload.lua - the real-program benchmark's script for Debian's lua5.4
-- built with XRay sleds: recursion through the interpreter (fib), table
-- work, and string work (format, concatenation, patterns, gsub).
local N = tonumber(arg and arg[1]) or 27

local function fib(n)
  if n < 2 then return n end
  return fib(n - 1) + fib(n - 2)
end

local t = {}
for i = 1, 20000 do
  t[#t + 1] = string.format("item-%05d:%x", i, i * 2654435761 % 4294967296)
end
local s = table.concat(t, ",")
local words = 0
for w in s:gmatch("item%-(%d+)") do words = words + (tonumber(w) % 7) end
local up = s:gsub("item", "ITEM"):upper():len()
table.sort(t, function(a, b) return a:sub(-4) < b:sub(-4) end)

print(string.format("fib(%d)=%d words=%d len=%d first=%s", N, fib(N), words, up, t[1]))
