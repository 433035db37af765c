package pkgbuild

import "context"

// Ref returns the reference Build gives p's image under opt, without
// building it: what a LinuxKit file's @pkg: entry names.
func Ref(ctx context.Context, p *Package, opt Options) (string, error) {
	root, err := moduleRoot(p.Dir)
	if err != nil {
		return "", err
	}
	tag := opt.Tag
	if tag == "" {
		tag = p.Tag
	}
	if tag == "" {
		tag = sourceTag(ctx, root)
	}
	org := p.Org
	if opt.Org != "" {
		org = opt.Org
	}
	return org + "/" + p.Image + ":" + tag, nil
}
