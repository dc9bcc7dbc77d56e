import re
cur=None; data={}
for line in open('/tmp/lat/ph.txt'):
    m=re.match(r'@(\w+):',line)
    if m: cur=m.group(1); data[cur]=[]; continue
    m=re.match(r'\[(\d+), (\d+)\)\s+(\d+)',line)
    if m and cur: data[cur].append((int(m.group(1)),int(m.group(3))))
names={'a':'request->daemon sendmsg to init','b':'->init sendmsg to zygote','c':'->exec of true','d':'true runs (exec->exit)','e':'->init writes report','f':'->client has answer','total':'total'}
for k in ['a','b','c','d','e','f','total']:
    if k not in data: continue
    tot=sum(c for _,c in data[k]); acc=0
    for lo,c in data[k]:
        acc+=c
        if acc>=tot/2: print(f"{names[k]:40s} median {lo}-{lo+20} us  (n={tot})"); break
