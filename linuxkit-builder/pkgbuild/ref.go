package pkgbuild

import "context"

// Ref returns the reference Build gives p's image under opt, without
// building it: what a LinuxKit file's @pkg: entry names. The tag is opt's,
// else build.yml's, else the git tree hash of the source.
func Ref(ctx context.Context, p *Package, opt Options) string {
	tag := opt.Tag
	if tag == "" {
		tag = p.Tag
	}
	if tag == "" {
		dir := p.Dir
		if root, err := moduleRoot(p.Dir); err == nil {
			dir = root
		}
		tag = sourceTag(ctx, dir)
	}
	org := p.Org
	if opt.Org != "" {
		org = opt.Org
	}
	return org + "/" + p.Image + ":" + tag
}
